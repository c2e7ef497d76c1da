"""The encoded-id contract shared by every stage: padding, out-of-vocabulary, first real item.

Lowest module of the package (imports nothing), so every stage reads the same numbers. The Triton
side keeps a numpy-only copy in ``serving/transform.py`` (it cannot import the package);
``tests/test_ids.py`` checks that the copy matches.
"""

PAD_ID = 0  # right padding of encoded sessions
OOV_ID = 1  # raw ids unseen at fit time
FIRST_ID = 2  # first real item (and category) id
RAW_PAD = -1  # right padding of raw sessions in serving requests (raw ids are >= 0)
