"""Faust glue: one module per service; bodies stay short, the logic lives in planstream/."""
