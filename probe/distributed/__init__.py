"""Engines that run probe batch jobs on other processes and machines (Ray)."""
