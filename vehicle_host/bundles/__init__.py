"""Mini-app bundles: manifest, WXML/WXSS compilation, the installed-app catalog."""
