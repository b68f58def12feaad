"""The pipeline floor: a git push through build, ship, deploy and monitor.

``gitsource`` (a bare repository whose hook sends real push webhooks), ``runs`` (each run's stages, kept
in SQLite) and ``pipeline`` (the Pipeline that reacts to those webhooks and the Traffic that
watches the deployed app answer).
"""
