"""TwoRooms: a dot in two rooms split by a wall with a door (Gymnasium environment)."""
