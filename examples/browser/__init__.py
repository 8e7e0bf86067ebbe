"""The browser example: index.html, app.js and msgpack.js, served by server.py."""
