"""Which input token drives an answer: sweeps over slot values, occlusion, the logit lens."""
