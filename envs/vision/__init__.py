"""Image tasks for the vision-language side of DeFacto: the synthetic picture task of
:mod:`rlcf.envs.vision.grounded_images`."""
