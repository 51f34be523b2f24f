"""What a run hands to other tools: the Prometheus textfile, alerting rules, schedules."""
