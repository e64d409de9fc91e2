"""wattlm.train"""
