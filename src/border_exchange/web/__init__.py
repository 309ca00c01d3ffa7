"""The border post's web page (``post serve``): templates, stylesheet, application."""
