"""What the model learned from its data: token loss over the SFT set (by channel, token kind and
checkpoint) and the training log (the loss curve and its readings)."""
