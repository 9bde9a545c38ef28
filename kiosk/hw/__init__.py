"""Hardware behind small interfaces: status lights, buzzer, staff button."""
