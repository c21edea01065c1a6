"""The stage layer: one module per rule file in rules/ (prepare <- data.smk, partition, train, predict,
certify, report). Each is what ``python -m pipeline <stage>`` runs; stage modules never import each other,
and read and write files only through their owners in pipeline/artifacts/.
"""
