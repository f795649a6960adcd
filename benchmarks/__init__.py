"""`make bench`: how fast a OneRoster CSV sync is, against SPEC §8 and a hand-written floor.

Run it with `python -m benchmarks.run`; benchmarks/README.md says what each figure means.
"""
