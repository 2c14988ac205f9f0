"""rgflow front ends: the headless CLI (rgflow.tui.cli, never imports textual) and the
Textual app."""
