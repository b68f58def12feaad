"""A workshop on one server: the JupyterHub that runs it (:mod:`.hub`), the instructor's live
view of the class (:mod:`.view`), and each learner's progress reaching it as signed webhooks
(:mod:`.report`)."""
