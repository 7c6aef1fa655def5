"""Device kinds, topic layout, payload schemas and simulators. Imports nothing
from the rest of moydom: it is the vocabulary every other layer speaks."""
