"""`python -m api.mcp [--http]`: the MCP server (stdio, or streamable HTTP at /mcp)."""

import sys

from api.mcp.server import main

sys.exit(main())
