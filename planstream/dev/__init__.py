"""Development tools, never imported by the product and left out of the wheel and the image:
the local stack, the scripted model server, sample plans, the demo, the fault suite and the
benchmarks. They need a checkout of the repository installed with the ``dev`` and ``local``
extras."""
