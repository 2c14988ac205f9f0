"""rgflow front ends: the headless CLI (tui.cli, never imports textual) and the Textual app."""
