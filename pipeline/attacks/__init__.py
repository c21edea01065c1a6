"""Empirical poisoning attacks on a run's ensemble (docs/attacks.md).

An attack of budget B inserts and removes training samples (B = inserted + removed, as the certificates
count), the run's base models that hold an edited bucket are rebuilt, and the attacked ensemble's
predictions are compared with the clean ones and with the certificates. Three families, one module each:

- ``targeted``: hash-aware near-copies of one target test sample, labelled with its runner-up class, each
  nudged to land in a bucket whose models still vote for the prediction (one attack per target);
- ``label_flip``: B / 2 training samples removed and inserted back with the class they are most confused with;
- ``backdoor``: B training images of other classes stamped with a small patch and labelled with a target class.

The attacked ensembles are evaluated from the clean run's shared distances (``ensemble``): a bucket an edit
touches is recomputed (only the classes that lost samples) or lowered by the inserted samples (a minimum over
more samples is the minimum of the two minima), every other bucket is read as it is. ``soundness`` checks
every attacked ensemble against the run's certificates.
"""

FAMILIES = ("targeted", "label_flip", "backdoor")
