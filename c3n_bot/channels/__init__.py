"""Channel adapters: verify, parse, render and send for Telegram, SMS, web and console."""
