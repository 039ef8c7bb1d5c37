"""Use cases: each public function runs in one transaction the caller owns."""
