"""wattlm.export"""
