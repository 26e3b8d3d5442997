# Run at the start of every kernel of a findings run (as PYTHONSTARTUP, by mlcourse.notebooks.run_findings):
# check each figure the notebook shows for overlapping text (mlcourse.findings.watch_figures).
# One expression and comments only, so that the notebook's namespace gains no names.
__import__("mlcourse.findings", fromlist=["watch_figures"]).watch_figures()
