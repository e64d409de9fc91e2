"""wattlm.models"""
