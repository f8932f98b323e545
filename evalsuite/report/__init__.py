"""Views of a stored run: tables, markdown, self-contained HTML, plots and image grids."""
