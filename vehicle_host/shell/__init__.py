"""The touchscreen shell: a pywebview window that renders mini-app pages and takes the driver's input."""
