"""The workbench's tabs and views: one `pn.viewable.Viewer` per file over the shared state objects.

A new view is one file here plus one line in app.py's list of tabs.
"""
