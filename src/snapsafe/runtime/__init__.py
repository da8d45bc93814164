"""The function runtime behind `snapsafe serve`: a clone pool, the Lambda Invoke API, metrics."""
