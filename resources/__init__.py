"""Resources: artifact IO managers, raw-data locations and the per-environment resource sets."""
