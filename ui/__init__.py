"""Toolbar and menu actions. They open the Processing algorithms; no inference logic lives here."""
