"""JEPA world models, regularisers, planners and the planning agent."""
