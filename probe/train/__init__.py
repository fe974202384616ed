"""What the model learned from its training data: token loss over the SFT set, by channel and checkpoint."""
