"""The image JEPA example: joint-embedding pretraining of an image encoder (SIGReg or VICReg).

- ``models``: encoders (ResNet, ViT), the projector and the joint-embedding loss;
- ``data``: CIFAR-10 / MNIST-like idx readers and a synthetic fallback; ``augment``: two-view
  augmentation with torch ops on whole batches;
- ``probe``: k-NN and linear probes on frozen features;
- ``train``: the trainer (``python -m jepa_agent.image.train --preset tiny``).

Independent of the world model and the planner: nothing in ``jepa_agent`` or ``training`` imports it.
"""
