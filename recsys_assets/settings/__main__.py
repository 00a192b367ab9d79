"""``python -m recsys_assets.settings`` prints the settings table (``docs/settings.md``)."""

from recsys_assets.settings import readme_table

print(readme_table())
