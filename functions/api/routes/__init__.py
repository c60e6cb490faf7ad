"""The API's routes by resource, each a Powertools Router that app.py includes: a route parses
the request, makes one domain call and answers with the API's view of the result."""
