"""What fine-tuning changed over a prompt set: the shift map, its statistics, following a token,
the regression table."""
