"""The ``context`` object a handler receives: the attributes of AWS Lambda's Python context."""

from __future__ import annotations

import time
from typing import Any


class LambdaContext:
    """Lambda's context: https://docs.aws.amazon.com/lambda/latest/dg/python-context.html"""

    def __init__(self, request_id: str, function_name: str, memory_mb: int, invoked_function_arn: str,
                 deadline_ms: int, clone_id: str) -> None:
        self.aws_request_id = request_id
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = invoked_function_arn or (
            f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}")
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d", time.gmtime()) + f"/[$LATEST]{clone_id}"
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def __repr__(self) -> str:
        return f"<LambdaContext request_id={self.aws_request_id} function={self.function_name}>"
