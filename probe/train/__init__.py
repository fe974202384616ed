"""What the model learned from its data: training logs (loss curves and their readings) and loss over SFT data."""
