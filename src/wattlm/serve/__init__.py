"""wattlm.serve"""
