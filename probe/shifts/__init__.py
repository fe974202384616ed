"""shift"""
