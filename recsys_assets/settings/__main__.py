"""``python -m recsys_assets.settings`` prints the README's table of variables."""

from recsys_assets.settings import readme_table

print(readme_table())
