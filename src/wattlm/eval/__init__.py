"""wattlm.eval"""
