"""The video JEPA example: a predictor of future frame embeddings on Moving MNIST.

- ``models``: the convolutional encoder, the multi-step predictor and the detection head;
- ``moving_mnist``: the seeded generator of bouncing-digit clips from the MNIST digits shipped in
  ``assets/mnist`` (with their checksum and attribution);
- ``train``: the trainer (``python -m jepa_agent.video.train --preset tiny``).

Independent of the world model and the planner: nothing in ``jepa_agent`` or ``training`` imports it.
"""
