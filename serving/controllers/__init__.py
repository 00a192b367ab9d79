"""The API's routes by domain: recommendations, feedback, admin and health, the explorer."""
