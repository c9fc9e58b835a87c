"""Scripted MPE policies (experts for the controlled teams, fixed opponents). Being written."""
