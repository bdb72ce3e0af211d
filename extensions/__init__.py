"""Front-end extensions shipped with the workbench (installed as the package `workbench_extensions`).

Each is plain ESM JavaScript loaded by a Panel custom component: no node, no build step, no CDN.
"""
