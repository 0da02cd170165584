"""Request and response models of the API, named by role: ``XCreate`` in, ``XPublic`` out."""
