# Sphinx configuration of the netreach.tunnels docs site, built by lab/scripts/docs.sh (`make docs`) as
# Ansible's own collection docs are built (antsibull-docs pages + sphinx_antsibull_ext + the Ansible theme).
# No intersphinx: the build runs offline, and every reference must resolve inside this site (-W).
from __future__ import annotations

project = "netreach.tunnels"
copyright = "netreach developers, GPL-3.0-or-later"
title = "netreach.tunnels"
html_short_title = "netreach.tunnels"
html_title = "netreach.tunnels documentation"

extensions = ["sphinx_antsibull_ext"]

pygments_style = "ansible"
highlight_language = "YAML+Jinja"

html_theme = "sphinx_ansible_theme"
html_show_sphinx = False
display_version = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False

default_role = "any"
nitpicky = True

html_theme_options = {
    "collapse_navigation": False,
    "display_version": False,
    "show_extranav": False,
    "show_rtd_ethical_ads": False,
    "topbar_links": {
        "Source code": "https://github.com/netreach/tunnels",
        "Issues": "https://github.com/netreach/tunnels/issues",
    },
    # The logo links here: an absolute address works from every page, wherever the site is served from.
    "documentation_home_url": "https://github.com/netreach/tunnels",
}
