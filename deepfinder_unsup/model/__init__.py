"""The network: DeepFinder's encoder (with its pretrained weights) and the classification / embedding head."""
