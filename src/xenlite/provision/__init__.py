"""Guest images as xen-tools makes them: ``xenlite create-image``, ``delete-image`` and
``list-images`` (xen-create-image, xen-delete-image, xen-list-images)."""
