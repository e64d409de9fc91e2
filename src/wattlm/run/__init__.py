"""`watt run`: a recipe through every stage."""
